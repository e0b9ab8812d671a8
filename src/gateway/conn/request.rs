//! One request on a connection: its head, its body, and the three ways to answer it (a
//! whole response, a raw writer for streams, a protocol upgrade).
//!
//! The connection's reader and writer (`Io`) travel with the request and come back to the
//! connection loop (`Home`) when it is answered, so the thread that parsed the request
//! serves it and then reads the next one from the same connection: no hand-off.

use std::io::{self, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::sync::{Arc, Mutex};

use super::body::Body;

/// A request method.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Method {
    Get,
    Post,
    Head,
    Other(String),
}

impl Method {
    pub fn parse(s: &str) -> Method {
        match s {
            "GET" => Method::Get,
            "POST" => Method::Post,
            "HEAD" => Method::Head,
            other => Method::Other(other.to_string()),
        }
    }

    pub fn as_str(&self) -> &str {
        match self {
            Method::Get => "GET",
            Method::Post => "POST",
            Method::Head => "HEAD",
            Method::Other(s) => s,
        }
    }
}

/// A request header as sent (values that are not UTF-8 are read lossily).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Header<'a> {
    pub name: &'a str,
    pub value: &'a str,
}

/// A request's header fields, in order: every name and value back to back in one
/// buffer, so a request takes two allocations for its headers however many it has (a
/// `String` per name and per value took two per field).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Headers {
    text: String,
    /// Per field: where its name ends and where its value ends in `text`.
    ends: Vec<(usize, usize)>,
}

impl Headers {
    /// Room for `fields` fields of `bytes` bytes in all.
    pub fn with_capacity(fields: usize, bytes: usize) -> Headers {
        Headers {
            text: String::with_capacity(bytes),
            ends: Vec::with_capacity(fields),
        }
    }

    pub fn push(&mut self, name: &str, value: &str) {
        self.text.push_str(name);
        let name_end = self.text.len();
        self.text.push_str(value);
        self.ends.push((name_end, self.text.len()));
    }

    pub fn iter(&self) -> impl Iterator<Item = Header<'_>> + '_ {
        let mut start = 0;
        self.ends.iter().map(move |&(name_end, value_end)| {
            let field = Header {
                name: &self.text[start..name_end],
                value: &self.text[name_end..value_end],
            };
            start = value_end;
            field
        })
    }

    pub fn len(&self) -> usize {
        self.ends.len()
    }

    pub fn is_empty(&self) -> bool {
        self.ends.is_empty()
    }
}

/// The connection's halves and what the current request left on them.
pub struct Io {
    pub reader: BufReader<TcpStream>,
    pub writer: TcpStream,
    /// What is left of the request body.
    pub body: Body,
    /// `Expect: 100-continue` not yet answered: sent before the body is first read.
    pub continue_pending: bool,
    /// The connection ends after this request.
    pub close: bool,
    /// The request was HTTP/1.0 (answers use its version, bodies end with the connection).
    pub http10: bool,
}

impl Io {
    /// A connection before its first request.
    pub fn new(stream: TcpStream, writer: TcpStream, buffer: usize) -> Io {
        Io {
            reader: BufReader::with_capacity(buffer, stream),
            writer,
            body: Body::Length(0),
            continue_pending: false,
            close: false,
            http10: false,
        }
    }
}

impl Read for Io {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if self.continue_pending {
            self.continue_pending = false;
            self.writer.write_all(b"HTTP/1.1 100 Continue\r\n\r\n")?;
        }
        self.body.read(&mut self.reader, buf)
    }
}

/// Where a request's `Io` goes back to when the request is answered.
pub type Home = Arc<Mutex<Option<Io>>>;

pub fn put_home(home: &Home, io: Io) {
    *home
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner) = Some(io);
}

pub fn take_home(home: &Home) -> Option<Io> {
    home.lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
        .take()
}

/// A parsed request, with the connection to answer it on.
pub struct Request {
    method: Method,
    url: String,
    headers: Headers,
    remote: Option<SocketAddr>,
    body_length: Option<usize>,
    io: Option<Io>,
    home: Home,
    /// What `as_reader` gives once the connection is gone.
    empty: io::Empty,
    /// Headers every answer to this request carries, whichever way it is answered
    /// (the CORS headers of an allowed web page).
    answer_headers: Vec<(String, String)>,
}

/// The connection after a `101 Switching Protocols`: the socket and the bytes the client
/// already sent past the request head.
pub struct Upgraded {
    pub stream: TcpStream,
    pub buffered: Vec<u8>,
}

impl Request {
    pub(super) fn new(
        method: Method,
        url: String,
        headers: Headers,
        remote: Option<SocketAddr>,
        body_length: Option<usize>,
        io: Io,
        home: Home,
    ) -> Request {
        Request {
            method,
            url,
            headers,
            remote,
            body_length,
            io: Some(io),
            home,
            empty: io::empty(),
            answer_headers: Vec::new(),
        }
    }

    pub fn method(&self) -> &Method {
        &self.method
    }

    /// The request target as sent: path and query.
    pub fn url(&self) -> &str {
        &self.url
    }

    pub fn headers(&self) -> &Headers {
        &self.headers
    }

    pub fn is_http10(&self) -> bool {
        self.io.as_ref().is_some_and(|io| io.http10)
    }

    pub fn remote_addr(&self) -> Option<&SocketAddr> {
        self.remote.as_ref()
    }

    /// The body's `Content-Length` (`usize::MAX` when it does not fit); `None` when chunked.
    pub fn body_length(&self) -> Option<usize> {
        self.body_length
    }

    /// Adds headers to whatever answers this request: a whole response, a stream's head
    /// (`answer_headers`, read by whoever frames one) or an error.
    pub fn add_answer_headers(&mut self, headers: Vec<(String, String)>) {
        self.answer_headers.extend(headers);
    }

    /// The headers `add_answer_headers` added.
    pub fn answer_headers(&self) -> &[(String, String)] {
        &self.answer_headers
    }

    /// The request body.
    pub fn as_reader(&mut self) -> &mut dyn Read {
        match &mut self.io {
            Some(io) => io,
            None => &mut self.empty,
        }
    }

    /// Sends a whole response: status, headers, body (`Content-Length` and `Date` added).
    pub fn respond(
        mut self,
        status: u16,
        headers: &[(String, String)],
        body: &[u8],
    ) -> io::Result<()> {
        let head_only = self.method == Method::Head;
        let Some(mut io) = self.io.take() else {
            return Ok(());
        };
        let result = write_response(
            &mut io,
            status,
            &[headers, &self.answer_headers],
            body,
            head_only,
        );
        if result.is_err() {
            io.close = true;
        }
        put_home(&self.home, io);
        result
    }

    /// The raw connection, for a response the caller frames itself (streams). The
    /// connection serves another request afterwards only if what was written ended a
    /// chunked body (`0\r\n\r\n`); otherwise it is closed.
    pub fn into_writer(mut self) -> Box<dyn Write + Send> {
        Box::new(ConnWriter {
            io: self.io.take(),
            home: self.home.clone(),
            tail: Vec::with_capacity(8),
        })
    }

    /// Answers `101 Switching Protocols` with `headers` and hands the connection over.
    pub fn upgrade(mut self, protocol: &str, headers: &[(String, String)]) -> io::Result<Upgraded> {
        let Some(mut io) = self.io.take() else {
            return Err(io::Error::other("the connection is gone"));
        };
        let mut head = String::from("HTTP/1.1 101 Switching Protocols\r\nConnection: Upgrade\r\n");
        head.push_str("Upgrade: ");
        head.push_str(protocol);
        head.push_str("\r\n");
        push_headers(&mut head, headers);
        head.push_str("\r\n");
        io.writer.write_all(head.as_bytes())?;
        let buffered = io.reader.buffer().to_vec();
        Ok(Upgraded {
            stream: io.reader.into_inner(),
            buffered,
        })
    }
}

impl Drop for Request {
    /// A request nobody answered (a handler that panicked) gets a 500, never silence.
    fn drop(&mut self) {
        if let Some(mut io) = self.io.take() {
            let body = br#"{"error":{"message":"The gateway failed to answer this request.","type":"server_error","param":null,"code":null}}"#;
            io.close = true;
            let json = [("Content-Type".to_string(), "application/json".to_string())];
            // The client may be gone; nothing more to do.
            let _ = write_response(&mut io, 500, &[&json, &self.answer_headers], body, false);
            put_home(&self.home, io);
        }
    }
}

/// The writer `into_writer` returns.
struct ConnWriter {
    io: Option<Io>,
    home: Home,
    /// The last bytes written (up to 5), to tell whether a chunked body was ended.
    tail: Vec<u8>,
}

const LAST_CHUNK: &[u8] = b"0\r\n\r\n";

impl Write for ConnWriter {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let Some(io) = &mut self.io else {
            return Err(io::Error::from(io::ErrorKind::NotConnected));
        };
        let n = io.writer.write(buf)?;
        let written = &buf[..n];
        if written.len() >= LAST_CHUNK.len() {
            self.tail.clear();
            self.tail
                .extend_from_slice(&written[written.len() - LAST_CHUNK.len()..]);
        } else {
            self.tail.extend_from_slice(written);
            let extra = self.tail.len().saturating_sub(LAST_CHUNK.len());
            self.tail.drain(..extra);
        }
        Ok(n)
    }

    fn flush(&mut self) -> io::Result<()> {
        match &mut self.io {
            Some(io) => io.writer.flush(),
            None => Ok(()),
        }
    }
}

impl Drop for ConnWriter {
    fn drop(&mut self) {
        if let Some(mut io) = self.io.take() {
            if io.http10 || self.tail != LAST_CHUNK {
                io.close = true;
            }
            put_home(&self.home, io);
        }
    }
}

fn push_headers(head: &mut String, headers: &[(String, String)]) {
    for (k, v) in headers {
        // Never let a value split the head.
        if k.is_empty() || k.contains(['\r', '\n', ':']) || v.contains(['\r', '\n']) {
            continue;
        }
        head.push_str(k);
        head.push_str(": ");
        head.push_str(v);
        head.push_str("\r\n");
    }
}

/// Writes a whole response (the header lists one after the other); small ones leave in
/// one write. A 204 or 304 has no body and says no length.
pub(super) fn write_response(
    io: &mut Io,
    status: u16,
    headers: &[&[(String, String)]],
    body: &[u8],
    head_only: bool,
) -> io::Result<()> {
    let fields: usize = headers.iter().map(|h| h.len()).sum();
    let mut head = String::with_capacity(192 + fields * 48);
    head.push_str(if io.http10 { "HTTP/1.0 " } else { "HTTP/1.1 " });
    head.push_str(&status.to_string());
    head.push(' ');
    head.push_str(reason(status));
    head.push_str("\r\nDate: ");
    super::date::now(&mut head);
    head.push_str("\r\n");
    if !matches!(status, 204 | 304) {
        head.push_str("Content-Length: ");
        head.push_str(&body.len().to_string());
        head.push_str("\r\n");
    }
    if io.close {
        head.push_str("Connection: close\r\n");
    }
    for list in headers {
        push_headers(&mut head, list);
    }
    head.push_str("\r\n");
    if head_only {
        io.writer.write_all(head.as_bytes())?;
    } else if body.len() <= 64 * 1024 {
        let mut all = head.into_bytes();
        all.extend_from_slice(body);
        io.writer.write_all(&all)?;
    } else {
        io.writer.write_all(head.as_bytes())?;
        io.writer.write_all(body)?;
    }
    io.writer.flush()
}

/// The reason phrase of a status code.
pub fn reason(status: u16) -> &'static str {
    match status {
        100 => "Continue",
        101 => "Switching Protocols",
        200 => "OK",
        201 => "Created",
        202 => "Accepted",
        204 => "No Content",
        301 => "Moved Permanently",
        302 => "Found",
        304 => "Not Modified",
        400 => "Bad Request",
        401 => "Unauthorized",
        402 => "Payment Required",
        403 => "Forbidden",
        404 => "Not Found",
        405 => "Method Not Allowed",
        408 => "Request Timeout",
        409 => "Conflict",
        413 => "Payload Too Large",
        415 => "Unsupported Media Type",
        422 => "Unprocessable Entity",
        426 => "Upgrade Required",
        429 => "Too Many Requests",
        431 => "Request Header Fields Too Large",
        499 => "Client Closed Request",
        500 => "Internal Server Error",
        501 => "Not Implemented",
        502 => "Bad Gateway",
        503 => "Service Unavailable",
        504 => "Gateway Timeout",
        505 => "HTTP Version Not Supported",
        _ => "Unknown",
    }
}
